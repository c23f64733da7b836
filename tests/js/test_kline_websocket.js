// The design document's integration test client (section 9.2), kept as written except:
// - the placeholder symbol 'test_mint_account' (not a valid mint) is replaced by KLINE_MINT;
// - the URL comes from KLINE_WS_URL (default: the document's ws://localhost:8080/ws);
// - the last line sets a non-zero exit code on failure (the original only logged it), so CI can require it
//   to pass.
// test_kline_websocket.js
const WebSocket = require('ws');
const assert = require('assert');

async function testKlineWebSocket() {
    const socket = new WebSocket(process.env.KLINE_WS_URL || 'ws://localhost:8080/ws');
    
    return new Promise((resolve, reject) => {
        let receivedHistory = false;
        let receivedRealtime = false;
        
        socket.on('open', () => {
            console.log('✓ WebSocket connection established');
        });
        
        socket.on('message', (data) => {
            const message = JSON.parse(data.toString());
            
            switch(message.type) {
                case 'connection_success':
                    console.log('✓ Connected successfully');
                    
                    // 订阅测试
                    socket.send(JSON.stringify({
                        msg_type: 'subscribe',
                        symbol: process.env.KLINE_MINT,
                        interval: 's1',
                        subscription_id: 'test_sub_1'
                    }));
                    break;
                    
                case 'history_data':
                    console.log('✓ Received historical data:', message.data.data.length, 'records');
                    receivedHistory = true;
                    checkCompletion();
                    break;
                    
                case 'kline_data':
                    console.log('✓ Received real-time data:', message.data);
                    receivedRealtime = true;
                    checkCompletion();
                    break;
                    
                case 'subscription_confirmed':
                    console.log('✓ Subscription confirmed:', message.data);
                    break;
                    
                case 'error':
                    console.error('✗ Received error:', message);
                    reject(new Error(`Server error: ${message.message}`));
                    break;
            }
        });
        
        socket.on('error', (error) => {
            console.error('✗ WebSocket error:', error);
            reject(error);
        });
        
        socket.on('close', () => {
            console.log('✓ WebSocket connection closed');
        });
        
        function checkCompletion() {
            if (receivedHistory && receivedRealtime) {
                console.log('✓ All tests passed');
                socket.close();
                resolve();
            }
        }
        
        setTimeout(() => {
            socket.close();
            reject(new Error('Test timeout'));
        }, 30000);
    });
}

testKlineWebSocket().catch((error) => {
    console.error(error);
    process.exitCode = 1;
});
